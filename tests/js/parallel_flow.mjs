// tus-js-client with parallelUploads: 4 against the plain tus endpoint: four partial uploads
// (Upload-Concat: partial), then a final upload whose metadata carries session_id.
// Prints {"upload_url": <the final upload's absolute URL>, "upload_id": <its id>}.
//
//   node parallel_flow.mjs --base-url http://127.0.0.1:8000 --token JWT --session-id UUID \
//        --file practice_video.mp4
// (or VIDEO_UPLOAD_BASE_URL, VIDEO_UPLOAD_TOKEN, VIDEO_UPLOAD_SESSION_ID, VIDEO_UPLOAD_FILE)
import { createReadStream } from 'node:fs';
import { basename } from 'node:path';
import * as tus from 'tus-js-client';

import { fail, print, progressLogger, readOptions } from './common.mjs';

async function main() {
  const { baseUrl, token, sessionId, file } = readOptions(process.argv.slice(2));
  const filename = basename(file);

  const finalUrl = await new Promise((resolve, reject) => {
    const upload = new tus.Upload(createReadStream(file), {
      endpoint: `${baseUrl}/api/v1/videos/tus`,
      parallelUploads: 4,
      retryDelays: [0, 1000],
      metadata: {
        filename,
        filetype: 'video/mp4',
        session_id: sessionId,
      },
      headers: {
        Authorization: `Bearer ${token}`,
      },
      chunkSize: 5 * 1024 * 1024,
      onError: reject,
      onProgress: progressLogger('parallel flow'),
      onSuccess: () => resolve(upload.url),
    });
    upload.start();
  });

  print({ upload_url: finalUrl, upload_id: new URL(finalUrl).pathname.split('/').pop() });
}

main().catch(fail);
