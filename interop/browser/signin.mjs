// The user's part of a sign-in, in Debian's chromium (playwright-core): open the authorization URL, sign in
// on the emulator's page, accept or cancel the consent page if one is shown, and follow the redirect to the
// app's loopback server. The one browser script of the repository: the interop consumers (interop/python,
// interop/node, interop/fhir-server) and the emulator's own browser test (emulator/tests/browser.rs) run it.
// argv[2]: JSON {url, callback, user, password, consent: "accept"|"cancel", userDataDir, otc?, resultSelector?,
// silentUrl?, withQuery?}; env BROWSER_NODE_MODULES.
// - otc (the device-code flow): the user first enters that code on the page.
// - resultSelector (a SPA redeeming its code from the page): the callback page's script is awaited and that
//   element's text returned as `result`.
// - silentUrl: after landing, a second sign-in (prompt=none) that the session cookie answers.
// - withQuery (a test that redeems the code itself): the callback URLs reported whole, as `callback` and
//   `silent`; otherwise only the names of their parameters are reported (the code is not for logs).
// Or, as the desktop's browser (`BROWSER=interop/browser/open-url`, which a library opens with the URL):
// argv[2] the URL, the user from env USER_NAME, USER_PASSWORD, CONSENT; the callback any http://localhost.
// Prints one JSON line: {landed (the callback URL with its parameters' names only, or null), page (the text of
// the page it stopped on when that is not the callback: Entra's error page, or the device flow's "You have
// signed in"), consentShown, result, error, loginPrefill (the sign-in form's login field as the page filled
// it), permissions (the consent page's list), dialogs (any alert(): a reflected value that ran as script),
// and with withQuery callback and silent}.
import { createRequire } from 'node:module';

const require = createRequire(`${process.env.BROWSER_NODE_MODULES}/`);
const { chromium } = require('playwright-core');
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const asDesktopBrowser = !process.argv[2].startsWith('{');
const a = asDesktopBrowser
  ? { url: process.argv[2], callback: 'http://localhost', user: process.env.USER_NAME,
      password: process.env.USER_PASSWORD, consent: process.env.CONSENT || 'accept',
      userDataDir: mkdtempSync(join(tmpdir(), 'chromium-')) }
  : JSON.parse(process.argv[2]);

const ctx = await chromium.launchPersistentContext(a.userDataDir, {
  executablePath: '/usr/bin/chromium',
  headless: true,
  // The emulator's CA lives only in this test run; the browser is told to accept it here.
  ignoreHTTPSErrors: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
const atCallback = (u) => u.toString().startsWith(a.callback);
let out = { landed: null, page: null, consentShown: false, result: null, error: null,
  loginPrefill: null, permissions: null, dialogs: [] };
try {
  const page = await ctx.newPage();
  // Any alert() would mean a reflected value ran as script.
  page.on('dialog', (d) => { out.dialogs.push(d.message()); d.dismiss(); });
  if (process.env.SIGNIN_TRACE) {
    const t = (m) => console.error(`${new Date().toISOString()} browser: ${m}`);
    page.on('request', (r) => t(`${r.method()} ${r.url().slice(0, 80)}`));
    page.on('response', (r) => t(`${r.status()} ${r.url().slice(0, 80)}`));
    page.on('requestfailed', (r) => t(`failed ${r.url().slice(0, 80)} ${r.failure()?.errorText}`));
    page.on('console', (m) => t(`console ${m.type()}: ${m.text().slice(0, 300)}`));
  }
  // The app's redirect may pass through the callback and move on at once (msal-browser returns to the
  // page that started the sign-in): remember the first arrival rather than polling the current URL.
  let reached = null;
  let onReached;
  const reachedP = new Promise((r) => { onReached = r; });
  page.on('framenavigated', (f) => {
    if (f === page.mainFrame() && atCallback(f.url()) && reached === null) { reached = f.url(); onReached(); }
  });
  const arrived = () => reached !== null || atCallback(page.url());
  const safe = (url) => { const u = new URL(url); return `${u.origin}${u.pathname}?${[...u.searchParams.keys()].join('&')}`; };
  try {
    await page.goto(a.url);
    for (let i = 0; i < 5 && !arrived(); i++) {
      await Promise.race([
        reachedP,
        page.waitForSelector('#otc, #passwd, #accept, #error, #done', { timeout: 60000 }),
      ]);
      if (arrived()) break;
      if (a.otc && await page.$('#otc')) {
        await page.fill('#otc', a.otc);
        await Promise.all([page.waitForLoadState(), page.click('#next')]);
      } else if (await page.$('#passwd')) {
        out.loginPrefill ??= await page.inputValue('#login');
        await page.fill('#login', a.user);
        await page.fill('#passwd', a.password);
        await Promise.all([page.waitForLoadState(), page.click('#signin')]);
      } else if (await page.$('#accept')) {
        out.consentShown = true;
        const list = await page.$('#permissions');
        out.permissions = list && (await list.textContent()).trim();
        await Promise.all([page.waitForLoadState(), page.click(a.consent === 'cancel' ? '#cancel' : '#accept')]);
      } else {
        break; // an error page
      }
    }
    if (arrived()) {
      const landed = reached ?? page.url();
      out.landed = safe(landed);
      if (a.withQuery) out.callback = landed;
      if (a.resultSelector) {
        await page.waitForSelector(`${a.resultSelector}:not(:empty)`, { timeout: 60000 });
        out.result = await page.textContent(a.resultSelector);
      } else {
        await page.waitForLoadState();
      }
      if (a.silentUrl) {
        await page.goto(a.silentUrl);
        await page.waitForURL(atCallback, { timeout: 60000 });
        if (a.withQuery) out.silent = page.url();
      }
    } else {
      out.page = (await page.textContent('body')).trim().slice(0, 2000);
    }
  } catch (e) {
    // Stuck: say where, so the consumer's report shows it.
    out.error = `${e.name}: ${String(e.message).split('\n')[0]} at ${safe(page.url())}`;
    out.page = ((await page.textContent('body').catch(() => '')) || '').trim().slice(0, 2000);
  }
  console.log(JSON.stringify(out));
} finally {
  await ctx.close();
  if (asDesktopBrowser) rmSync(a.userDataDir, { recursive: true, force: true });
}
