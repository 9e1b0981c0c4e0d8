// End-to-end check of the upload page in headless Chromium, driven by playwright-core.
//
// Started by tests/test_web_page.py against a live test server. Environment:
//   BASE_URL      the server, e.g. http://127.0.0.1:PORT
//   TOKEN         a bearer JWT for a fresh user
//   ARTIFACT_DIR  where the screenshots and the generated video go
//   CHUNK_SIZE    the PATCH size the page must upload with (64 KiB, so the clip takes many)
//   PAGE_QUERY    what follows the page's address: "" when the service suggests CHUNK_SIZE
//                 (the page reads it from its <meta>), "?chunkSize=N" to override what it suggests
//   CHROMIUM      the browser (default /usr/bin/chromium; browsers cannot be downloaded here)
//
// The video is real: the page's own Chromium records a canvas animation with MediaRecorder
// (WebM/VP8), so no video file has to be shipped and no encoder installed. The page uploads in
// CHUNK_SIZE pieces, so the ~1 MB clip takes many PATCHes. Request interception holds back
// the third PATCH: the test pauses while the upload is really mid-way, checks the server's
// offset and resumes; it holds the sixth and reloads the page, picks the same file again and
// expects tus-js-client to find the earlier upload and go on from the server's offset. Then it
// plays the video: the player streams the signed URL the page got from `/playback` (the
// service's signed content URL, or a presigned S3 URL), and every request for the video's bytes
// is recorded, to show that none carried the token and that the player asked for ranges.
// Prints one JSON line of findings; exits non-zero on failure.
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { required, stepper, within } from './harness.mjs';

const BASE_URL = required('BASE_URL');
const TOKEN = required('TOKEN');
const ARTIFACT_DIR = required('ARTIFACT_DIR');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const CHUNK = Number(required('CHUNK_SIZE'));
const PAGE_QUERY = process.env.PAGE_QUERY || '';
const HELD_PATCH = 3; // PATCHes 1 and 2 go through; the third is held until the test pauses

const step = stepper('upload-page');

async function sessionVideos(sessionId) {
  const response = await fetch(`${BASE_URL}/api/v1/sessions/${sessionId}/videos`, {
    headers: { Authorization: `Bearer ${TOKEN}` },
  });
  if (!response.ok) throw new Error(`listing videos: ${response.status}`);
  return response.json();
}

// Runs inside the page: a 2.5 s canvas animation recorded as WebM; returns it base64-encoded.
async function recordClip() {
  const canvas = document.createElement('canvas');
  canvas.width = 640;
  canvas.height = 360;
  const context = canvas.getContext('2d');
  let frame = 0;
  const draw = () => {
    frame += 1;
    context.fillStyle = `hsl(${(frame * 7) % 360} 55% 35%)`;
    context.fillRect(0, 0, canvas.width, canvas.height);
    for (let i = 0; i < 60; i += 1) {
      // Busy, changing detail keeps the encoder's bitrate (and so the file) from collapsing.
      context.fillStyle = `hsl(${Math.random() * 360} 70% ${30 + Math.random() * 50}%)`;
      context.fillRect(Math.random() * 640, Math.random() * 360, 10 + Math.random() * 80, 10 + Math.random() * 80);
    }
    context.fillStyle = '#fff';
    context.font = 'bold 48px sans-serif';
    context.fillText(`scales · take ${frame}`, 40 + (frame % 100), 190);
  };
  draw();
  const stream = canvas.captureStream(25);
  const recorder = new MediaRecorder(stream, { mimeType: 'video/webm;codecs=vp8', videoBitsPerSecond: 4_000_000 });
  const parts = [];
  recorder.ondataavailable = (event) => { if (event.data.size) parts.push(event.data); };
  const stopped = new Promise((resolve) => { recorder.onstop = resolve; });
  const timer = setInterval(draw, 40);
  recorder.start(250);
  await new Promise((resolve) => setTimeout(resolve, 2500));
  recorder.stop();
  await stopped;
  clearInterval(timer);
  stream.getTracks().forEach((track) => track.stop());
  const bytes = new Uint8Array(await new Blob(parts, { type: 'video/webm' }).arrayBuffer());
  let binary = '';
  for (let i = 0; i < bytes.length; i += 0x8000) {
    binary += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
  }
  return btoa(binary);
}

async function main() {
  mkdirSync(ARTIFACT_DIR, { recursive: true });
  rmSync(join(ARTIFACT_DIR, 'web-page-failure.png'), { force: true });
  step('launch Chromium');
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
    ],
  });
  const pageErrors = [];
  let page = null;
  try {
    const context = await browser.newContext({ viewport: { width: 1024, height: 900 } });
    page = await context.newPage();
    page.setDefaultTimeout(30_000);
    page.on('pageerror', (error) => pageErrors.push(String(error)));

    step('open the page');
    await page.goto(`${BASE_URL}/${PAGE_QUERY}`);
    await page.waitForFunction(() => window.tus && window.tus.isSupported);
    if (await page.isVisible('#notice')) throw new Error(`notice shown: ${await page.textContent('#notice')}`);

    step('save the token, create a session');
    await page.fill('#token', TOKEN);
    await page.click('#save-token');
    await page.waitForFunction(() => document.querySelector('#token-state').textContent.includes('Signed in as'));
    await page.fill('#session-name', 'Scales in G');
    await page.click('#create-session');
    await page.waitForFunction(() => document.querySelector('#session-select').value !== '');
    const sessionId = await page.inputValue('#session-select');

    step('record a clip in the page');
    const clip = Buffer.from(await page.evaluate(recordClip), 'base64');
    const clipPath = join(ARTIFACT_DIR, 'practice-take.webm');
    writeFileSync(clipPath, clip);
    if (clip.length < HELD_PATCH * CHUNK + CHUNK) throw new Error(`clip too small to pause mid-way: ${clip.length}`);
    await page.setInputFiles('#file', clipPath); // a real file: its lastModified is stable

    step('upload until the third PATCH, which is held');
    const tusRoutes = '**/api/v1/videos/tus/**';
    const holds = new Map(); // PATCH number → the held route, once it came
    const hold = (number) => {
      const entry = {};
      entry.reached = new Promise((resolve) => { entry.resolve = resolve; });
      holds.set(number, entry);
      return entry;
    };
    const release = async (entry) => {
      await entry.route.abort().catch(() => { /* the page already cancelled or left it */ });
    };
    const patchOffsets = [];
    await page.route(tusRoutes, async (route) => {
      if (route.request().method() === 'PATCH') {
        patchOffsets.push(Number(route.request().headers()['upload-offset']));
        const entry = holds.get(patchOffsets.length);
        if (entry) {
          entry.route = route; // never answered: to the page this PATCH is still in flight
          entry.resolve();
          return;
        }
      }
      await route.continue().catch(() => { /* the page navigated away meanwhile */ });
    });
    const beforePause = hold(HELD_PATCH);
    const beforeReload = hold(HELD_PATCH + 3);
    await page.click('#start');
    await within(beforePause.reached, 30_000, 'the third PATCH never came');
    const progressBeforePause = await page.evaluate(() => document.querySelector('#progress').value);

    step('pause');
    await page.click('#pause');
    await page.waitForFunction(() => document.body.dataset.uploadState === 'paused');
    await release(beforePause);
    const pausedVideos = await sessionVideos(sessionId);
    if (pausedVideos.length !== 1) throw new Error(`expected one upload while paused, got ${pausedVideos.length}`);
    const paused = pausedVideos[0];
    if (paused.upload_completed || paused.offset !== (HELD_PATCH - 1) * CHUNK) {
      throw new Error(`unexpected state while paused: ${JSON.stringify(paused)}`);
    }
    await page.click('#refresh');
    await page.waitForSelector(`li.video[data-video-id="${paused.id}"]`);
    await page.screenshot({ path: join(ARTIFACT_DIR, 'web-page-paused.png'), fullPage: true });

    step('resume, then lose the page mid-upload (reload)');
    await page.click('#resume');
    await within(beforeReload.reached, 30_000, 'the sixth PATCH never came');
    await page.reload();
    await release(beforeReload);
    await page.waitForFunction(() => window.tus && document.querySelector('#session-select').value !== '');
    const [interrupted] = await sessionVideos(sessionId);
    const reloadOffset = interrupted.offset;
    // PATCHes 1, 2 landed; 3 was held; after Resume, 4 and 5 (resent 3rd, then 4th chunk) landed.
    if (reloadOffset !== (HELD_PATCH + 1) * CHUNK) throw new Error(`offset before reload: ${reloadOffset}`);

    step('pick the same file again: the upload resumes (findPreviousUploads)');
    const patchesBefore = patchOffsets.length;
    await page.setInputFiles('#file', clipPath); // a real file: its lastModified is stable
    await page.click('#start');
    await page.waitForFunction(() => document.body.dataset.uploadState === 'done');
    const firstOffsetAfterReload = patchOffsets[patchesBefore];
    const item = `li.video[data-video-id="${paused.id}"][data-status="completed"]`;
    await page.waitForSelector(item);

    step('play it back');
    const mediaRequests = []; // what the player fetched: the video's bytes, by its signed URL
    const playbackAnswers = [];
    page.on('response', (response) => {
      const request = response.request();
      const path = new URL(request.url()).pathname;
      if (path.endsWith('/playback')) playbackAnswers.push(response.status());
      if (request.resourceType() === 'media' || path.endsWith('/content')) {
        const headers = request.headers();
        mediaRequests.push({
          url: request.url(),
          method: request.method(),
          authorization: 'authorization' in headers,
          range: headers.range || null,
          status: response.status(),
        });
      }
    });
    await page.click(`${item} button.play`);
    await page.waitForFunction(() => {
      const player = document.querySelector('#player');
      return player.dataset.videoId && player.readyState >= 2;
    });
    const player = await page.evaluate(() => {
      const video = document.querySelector('#player');
      video.pause();
      return {
        readyState: video.readyState,
        width: video.videoWidth,
        height: video.videoHeight,
        src: video.currentSrc,
      };
    });
    await page.screenshot({ path: join(ARTIFACT_DIR, 'web-page.png'), fullPage: true });
    await page.setViewportSize({ width: 390, height: 844 });
    await page.screenshot({ path: join(ARTIFACT_DIR, 'web-page-phone.png'), fullPage: true });

    const finalVideos = await sessionVideos(sessionId);
    const result = {
      session_id: sessionId,
      video_id: paused.id,
      clip_path: clipPath,
      clip_size: clip.length,
      patches: patchOffsets.length,
      first_offset_after_reload: firstOffsetAfterReload,
      reload_offset: reloadOffset,
      progress_before_pause: progressBeforePause,
      paused_offset: paused.offset,
      final_videos: finalVideos.map((video) => ({ id: video.id, status: video.status, size: video.size })),
      player,
      playback_answers: playbackAnswers,
      media_requests: mediaRequests,
      page_errors: pageErrors,
    };
    step('done');
    process.stdout.write(JSON.stringify(result) + '\n');
  } catch (error) {
    if (page) {
      await page.screenshot({ path: join(ARTIFACT_DIR, 'web-page-failure.png'), fullPage: true }).catch(() => {});
      const status = await page.textContent('#status').catch(() => '?');
      step(`page status at failure: ${status}; page errors: ${JSON.stringify(pageErrors)}`);
    }
    throw error;
  } finally {
    await browser.close();
    step('closed');
  }
}

main().catch((error) => {
  process.stderr.write(`[upload-page] FAILED: ${error && error.stack ? error.stack : error}\n`);
  process.exit(1);
});
