// The user's part of a sign-in, in Debian's chromium (playwright-core): open the authorization URL a
// library built, sign in on the emulator's page, accept or cancel the consent page if one is shown, and
// follow the redirect to the app's loopback server. Used by the interop consumers (interop/python, node).
// argv[2]: JSON {url, callback, user, password, consent: "accept"|"cancel", userDataDir, otc?, resultSelector?};
// env BROWSER_NODE_MODULES. With `otc` (the device-code flow) the user first enters that code on the page.
// With `resultSelector` (a SPA), the callback page's script is awaited and that element's text returned as `result`.
// Or, as the desktop's browser (`BROWSER=interop/browser/open-url`, which a library opens with the URL):
// argv[2] the URL, the user from env USER_NAME, USER_PASSWORD, CONSENT; the callback any http://localhost.
// Prints one JSON line: {landed (the callback URL with its parameters' names only, or null), page (the text of the page it stopped on
// when that is not the callback: Entra's error page, or the device flow's "You have signed in"), consentShown}.
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
let out = { landed: null, page: null, consentShown: false, result: null, error: null };
try {
  const page = await ctx.newPage();
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
        await page.fill('#login', a.user);
        await page.fill('#passwd', a.password);
        await Promise.all([page.waitForLoadState(), page.click('#signin')]);
      } else if (await page.$('#accept')) {
        out.consentShown = true;
        await Promise.all([page.waitForLoadState(), page.click(a.consent === 'cancel' ? '#cancel' : '#accept')]);
      } else {
        break; // an error page
      }
    }
    if (arrived()) {
      // Where it landed, with the names of the query's parameters only (the code is not for logs).
      out.landed = safe(reached ?? page.url());
      if (a.resultSelector) {
        await page.waitForSelector(`${a.resultSelector}:not(:empty)`, { timeout: 60000 });
        out.result = await page.textContent(a.resultSelector);
      } else {
        await page.waitForLoadState();
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
