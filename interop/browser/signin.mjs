// The user's part of a sign-in, in Debian's chromium (playwright-core): open the authorization URL a
// library built, sign in on the emulator's page, accept or cancel the consent page if one is shown, and
// follow the redirect to the app's loopback server. Used by the interop consumers (interop/python, node).
// argv[2]: JSON {url, callback, user, password, consent: "accept"|"cancel", userDataDir, otc?};
// env BROWSER_NODE_MODULES. With `otc` (the device-code flow) the user first enters that code on the page.
// Prints one JSON line: {landed (URL at the callback, or null), page (the text of the page it stopped on
// when that is not the callback: Entra's error page, or the device flow's "You have signed in"), consentShown}.
import { createRequire } from 'node:module';

const require = createRequire(`${process.env.BROWSER_NODE_MODULES}/`);
const { chromium } = require('playwright-core');
const a = JSON.parse(process.argv[2]);

const ctx = await chromium.launchPersistentContext(a.userDataDir, {
  executablePath: '/usr/bin/chromium',
  headless: true,
  // The emulator's CA lives only in this test run; the browser is told to accept it here.
  ignoreHTTPSErrors: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
const atCallback = (u) => u.toString().startsWith(a.callback);
let out = { landed: null, page: null, consentShown: false };
try {
  const page = await ctx.newPage();
  await page.goto(a.url);
  const next = async () => {
    await Promise.race([
      page.waitForURL(atCallback, { timeout: 20000 }),
      page.waitForSelector('#otc, #passwd, #accept, #error, #done', { timeout: 20000 }),
    ]);
  };
  for (let i = 0; i < 5 && !atCallback(page.url()); i++) {
    await next();
    if (atCallback(page.url())) break;
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
  if (atCallback(page.url())) {
    await page.waitForLoadState();
    out.landed = page.url();
  } else {
    out.page = (await page.textContent('body')).trim().slice(0, 2000);
  }
  console.log(JSON.stringify(out));
} finally {
  await ctx.close();
}
