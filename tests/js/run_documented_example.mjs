// Runs the API documentation's JavaScript example (documented_example.mjs, the documentation's
// code block as it stands, checked by tests/test_documented_example.py) in Node. The example
// takes `token`, `sessionId`, `file` and `videoDuration` from its surroundings, which give them
// here as globals, and calls fetch with paths: fetch here resolves them against the service's
// base URL, the one thing a page would give that Node has not. `file` is what tus-js-client takes
// in Node for a browser File: a stream of the file (an fs.ReadStream), with a File's name, size
// and type.
//
//   node run_documented_example.mjs --base-url http://127.0.0.1:8000 --token JWT \
//        --session-id UUID --file practice_video.mp4 [--duration 180]
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { basename } from 'node:path';

import { readOptions } from './common.mjs';

const { baseUrl, token, sessionId, file: path, duration } = readOptions(process.argv.slice(2));
const { size } = await stat(path);

const file = Object.assign(createReadStream(path), {
  name: basename(path),
  size,
  type: 'video/mp4',
});

const nodeFetch = globalThis.fetch;
Object.assign(globalThis, {
  token,
  sessionId,
  file,
  videoDuration: duration,
  fetch: (resource, options) => nodeFetch(new URL(resource, baseUrl), options),
});

await import('./documented_example.mjs');
