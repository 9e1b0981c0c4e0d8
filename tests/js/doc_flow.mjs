// The documentation's JavaScript flow, step by step: REST init, a tus upload to the returned
// upload_url (absolute: Node has no page to resolve a relative URL against), then REST complete
// from onSuccess. Prints {"upload_id", "upload_url", "tus_url", "video_id", "status"}.
//
//   node doc_flow.mjs --base-url http://127.0.0.1:8000 --token JWT --session-id UUID \
//        --file practice_video.mp4 [--duration 180]
// (or VIDEO_UPLOAD_BASE_URL, VIDEO_UPLOAD_TOKEN, VIDEO_UPLOAD_SESSION_ID, VIDEO_UPLOAD_FILE)
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { basename } from 'node:path';
import * as tus from 'tus-js-client';

import { fail, print, progressLogger, readOptions, restJson } from './common.mjs';

async function main() {
  const { baseUrl, token, sessionId, file, duration } = readOptions(process.argv.slice(2));
  const filename = basename(file);
  const { size } = await stat(file);

  // Initialize upload
  const init = await restJson(`${baseUrl}/api/v1/videos/upload/init`, {
    token,
    method: 'POST',
    body: {
      session_id: sessionId,
      filename,
      file_size: size,
      duration_seconds: duration,
    },
  });
  const { upload_id: uploadId, upload_url: uploadUrl } = init;

  // Create TUS upload, complete it from onSuccess
  const video = await new Promise((resolve, reject) => {
    const upload = new tus.Upload(createReadStream(file), {
      endpoint: uploadUrl,
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
      onProgress: progressLogger('doc flow'),
      onSuccess: () => {
        restJson(`${baseUrl}/api/v1/videos/upload/complete`, {
          token,
          method: 'POST',
          body: { upload_id: uploadId },
        }).then((completed) => resolve({ ...completed, tusUrl: upload.url }), reject);
      },
    });
    upload.start();
  });

  print({
    upload_id: uploadId,
    upload_url: uploadUrl,
    tus_url: video.tusUrl,
    video_id: video.id,
    status: video.status,
  });
}

main().catch(fail);
