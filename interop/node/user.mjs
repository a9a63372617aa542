// The user's side of an interactive sign-in (see interop/python/user.py): a loopback server at the app's
// redirect URI, and Debian's chromium (interop/browser/signin.mjs) on the emulator's pages.
// env USER_NAME, USER_PASSWORD, BROWSER_NODE_MODULES, SIGNIN_SCRIPT; CONSENT (accept or cancel).
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export function browser(url, callback, resultSelector = undefined, otc = undefined) {
  const profile = mkdtempSync(join(tmpdir(), 'chromium-'));
  const arg = JSON.stringify({ url, callback, user: process.env.USER_NAME, password: process.env.USER_PASSWORD,
    consent: process.env.CONSENT || 'accept', userDataDir: profile, resultSelector, otc });
  return new Promise((resolve, reject) => {
    execFile('node', [process.env.SIGNIN_SCRIPT, arg], { timeout: 90000 }, (err, stdout, stderr) => {
      rmSync(profile, { recursive: true, force: true });
      process.stderr.write(stderr);
      if (err) reject(new Error(`browser failed: ${stderr.slice(-1500)}`));
      else resolve(JSON.parse(stdout.trim().split('\n').pop()));
    });
  });
}

/** Opens authUrl in the browser; resolves to [the query the loopback server at redirectUri got, or null, the browser's result]. */
export async function signIn(authUrl, redirectUri) {
  const u = new URL(redirectUri);
  let got = null;
  const server = createServer(async (req, res) => {
    const q = new URL(req.url, redirectUri);
    let body = '';
    for await (const chunk of req) body += chunk; // response_mode=form_post
    if (q.pathname === u.pathname) got = Object.fromEntries(req.method === 'POST' ? new URLSearchParams(body) : q.searchParams);
    res.writeHead(200, { 'Content-Type': 'text/html' }).end("<p id='result'>You may close this window.</p>");
  });
  await new Promise((r) => server.listen(Number(u.port || 80), '127.0.0.1', r));
  try {
    const seen = await browser(authUrl, redirectUri);
    return [got, seen];
  } finally {
    server.close();
  }
}
