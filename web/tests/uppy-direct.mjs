// Uppy's @uppy/aws-s3 against the service's direct-upload routes, in headless Chromium.
//
// Started by tests/test_direct_uppy.py against a live test server on S3 (SeaweedFS, whose bucket
// the test configured for CORS). Environment:
//   BASE_URL     the server, e.g. http://127.0.0.1:PORT
//   TOKEN        a bearer JWT
//   SESSION_ID   a practice session of the token's user
//   VIDEO_PATH   the video file to upload (over 5 MiB: two parts)
//   DURATION     its duration in seconds, as the client declares it
//   CHROMIUM     the browser (default /usr/bin/chromium)
//
// The server serves the page (web/tests/uppy-direct.html) at /__uppy-direct/ and Uppy, bundled
// by the test with esbuild, beside it: from its own loopback origin, which Chromium lets reach
// the loopback S3 server (a page of unknown address, such as an intercepted one, may not).
// The page's Uppy is configured like any Companion endpoint: `endpoint`, `headers`,
// `shouldUseMultipart`. The signing request of part 2 is held until part 1 is in S3; the test
// pauses Uppy there, then resumes it: Uppy asks the service which parts S3 holds (ListParts)
// and sends only the second. Prints one JSON line of findings; exits non-zero on failure.
import { chromium } from 'playwright-core';
import { required, stepper, within } from './harness.mjs';

const BASE_URL = required('BASE_URL');
const TOKEN = required('TOKEN');
const SESSION_ID = required('SESSION_ID');
const VIDEO_PATH = required('VIDEO_PATH');
const DURATION = Number(required('DURATION'));
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const PAGE = `${BASE_URL}/__uppy-direct/`;
const DIRECT = '/api/v1/videos/direct/s3/multipart';

const step = stepper('uppy-direct');

async function until(check, ms, message) {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(message);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

// The direct-upload requests the page made, in order: "create", "sign N", "list", "complete".
function describe(request) {
  const url = new URL(request.url());
  if (!url.pathname.startsWith(DIRECT)) return null;
  const rest = url.pathname.slice(DIRECT.length).split('/').filter(Boolean);
  if (request.method() === 'POST' && rest.length === 0) return 'create';
  if (request.method() === 'POST' && rest[1] === 'complete') return 'complete';
  if (request.method() === 'DELETE') return 'abort';
  if (request.method() === 'GET' && rest.length === 2) return `sign ${rest[1]}`;
  if (request.method() === 'GET' && rest.length === 1) return 'list';
  return `${request.method()} ${url.pathname}`;
}

const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
const findings = { requests: [], page_errors: [], s3_puts: [] };
try {
  const page = await browser.newPage();
  page.on('pageerror', (error) => findings.page_errors.push(String(error)));
  page.on('console', (message) => {
    if (message.type() === 'error') step(`console: ${message.text()}`);
  });
  page.on('request', (request) => {
    const name = describe(request);
    if (name) findings.requests.push(name);
    if (request.method() === 'PUT' && !request.url().startsWith(BASE_URL)) {
      findings.s3_puts.push(new URL(request.url()).searchParams.get('partNumber'));
    }
  });
  // Hold back the first signing of part 2 until the test has paused the upload.
  let heldRoute = null;
  let releaseHeld = null;
  const held = new Promise((resolve) => { releaseHeld = resolve; });
  await page.route(`${BASE_URL}${DIRECT}/*/2?*`, async (route) => {
    if (heldRoute === null) {
      heldRoute = route;
      step('holding the signing of part 2');
      releaseHeld();
      return;
    }
    await route.continue();
  });

  await page.goto(PAGE);
  await page.setInputFiles('#file', VIDEO_PATH);
  await page.evaluate(
    (config) => window.uppyTest.start(config),
    { token: TOKEN, sessionId: SESSION_ID, durationSeconds: DURATION },
  );
  step('upload started');
  await within(held, 30_000, 'part 2 was never signed');
  await until(
    () => page.evaluate(() => window.uppyTest.state.partsUploaded.includes(1)),
    30_000,
    'part 1 never reached S3',
  );
  const multipart = await page.evaluate(() => window.uppyTest.s3Multipart());
  findings.upload_id = multipart.uploadId;
  findings.key = multipart.key;
  await page.evaluate(() => window.uppyTest.pause());
  step('paused with part 1 in S3');
  try {
    await heldRoute.abort('aborted'); // the paused Uppy no longer waits for it
  } catch (error) {
    step(`held request already gone: ${error.message}`);
  }
  const listed = await fetch(
    `${BASE_URL}${DIRECT}/${multipart.uploadId}?key=${encodeURIComponent(multipart.key)}`,
    { headers: { Authorization: `Bearer ${TOKEN}` } },
  );
  findings.parts_while_paused = (await listed.json()).map((part) => part.PartNumber);
  findings.requests.push('-- resume --');
  await page.evaluate(() => window.uppyTest.resume());
  step('resumed');
  findings.result = await within(
    page.evaluate(() => window.uppyTest.state.done),
    60_000,
    'Uppy did not finish',
  );
  findings.errors = await page.evaluate(() => window.uppyTest.state.errors);
  findings.parts_uploaded = await page.evaluate(() => window.uppyTest.state.partsUploaded);
  step(`done: ${JSON.stringify(findings.result.successful.map((f) => f.response.uploadURL))}`);
  // Then play it as a player would: through its signed playback URL, with no token.
  const videoId = findings.result.successful[0].response.body.videoId;
  findings.playback_ready_state = await within(
    page.evaluate(
      async ({ base, token, id }) => {
        const answer = await fetch(`${base}/api/v1/videos/${id}/playback`, {
          headers: { Authorization: `Bearer ${token}` },
        });
        const { url } = await answer.json();
        const player = document.createElement('video');
        player.muted = true;
        player.preload = 'auto';
        document.body.append(player);
        await new Promise((resolve, reject) => {
          player.addEventListener('loadeddata', resolve, { once: true });
          player.addEventListener('error', () => reject(new Error(`player error ${player.error?.code}`)), { once: true });
          player.src = url;
        });
        return player.readyState;
      },
      { base: BASE_URL, token: TOKEN, id: videoId },
    ),
    30_000,
    'the video never played through its playback URL',
  );
  step(`played through the signed URL: readyState ${findings.playback_ready_state}`);
} finally {
  await browser.close();
}
process.stdout.write(`${JSON.stringify(findings)}\n`);
