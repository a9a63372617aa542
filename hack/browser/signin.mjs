// Signs in through the entra-emulator's HTML pages in Debian's chromium, driven by playwright-core:
// the sign-in form, the consent page, then the loopback redirect; then a second, silent sign-in
// (prompt=none) that the session cookie answers. Used by emulator/tests/browser.rs.
// argv[2]: JSON {url, silentUrl?, callback, user, password, userDataDir, resultSelector?};
// env BROWSER_NODE_MODULES. With resultSelector, the callback page's script (a SPA redeeming its code
// cross-origin) is awaited and that element's text returned as `result`.
// Prints one JSON line: {callback, silent, loginPrefill, permissions, dialogs, result}.
import { createRequire } from 'node:module';

const require = createRequire(`${process.env.BROWSER_NODE_MODULES}/`);
const { chromium } = require('playwright-core');
const a = JSON.parse(process.argv[2]);

const ctx = await chromium.launchPersistentContext(a.userDataDir, {
  executablePath: '/usr/bin/chromium',
  headless: true,
  // The emulator's CA is made at start; the test trusts it here rather than in a system store.
  ignoreHTTPSErrors: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
const dialogs = [];
try {
  const page = await ctx.newPage();
  // Any alert() would mean a reflected value ran as script.
  page.on('dialog', (d) => { dialogs.push(d.message()); d.dismiss(); });
  const atCallback = (u) => u.toString().startsWith(a.callback);
  await page.goto(a.url);
  await page.waitForSelector('#passwd');
  const loginPrefill = await page.inputValue('#login');
  await page.fill('#login', a.user);
  await page.fill('#passwd', a.password);
  await page.click('#signin');
  await page.waitForSelector('#accept');
  const permissions = (await page.textContent('#permissions')).trim();
  await page.click('#accept');
  await page.waitForURL(atCallback, { timeout: 20000 });
  const callback = page.url();
  let result = null;
  if (a.resultSelector) {
    await page.waitForSelector(`${a.resultSelector}:not(:empty)`, { timeout: 20000 });
    result = await page.textContent(a.resultSelector);
  }
  let silent = null;
  if (a.silentUrl) {
    await page.goto(a.silentUrl);
    await page.waitForURL(atCallback, { timeout: 20000 });
    silent = page.url();
  }
  console.log(JSON.stringify({ callback, silent, loginPrefill, permissions, dialogs, result }));
} finally {
  await ctx.close();
}
