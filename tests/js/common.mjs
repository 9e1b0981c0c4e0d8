// Shared by the flow scripts: options from argv (--name value) or the environment, JSON output.
import { parseArgs } from 'node:util';

const ENV = {
  'base-url': 'VIDEO_UPLOAD_BASE_URL',
  token: 'VIDEO_UPLOAD_TOKEN',
  'session-id': 'VIDEO_UPLOAD_SESSION_ID',
  file: 'VIDEO_UPLOAD_FILE',
  duration: 'VIDEO_UPLOAD_DURATION_SECONDS',
};

export function readOptions(argv) {
  const { values } = parseArgs({
    args: argv,
    options: Object.fromEntries(Object.keys(ENV).map((name) => [name, { type: 'string' }])),
  });
  const pick = (name) => values[name] ?? process.env[ENV[name]];
  const missing = ['base-url', 'token', 'session-id', 'file'].filter((name) => !pick(name));
  if (missing.length > 0) {
    fail(`missing options: ${missing.map((name) => `--${name} (or ${ENV[name]})`).join(', ')}`);
  }
  const options = {
    baseUrl: pick('base-url'),
    token: pick('token'),
    sessionId: pick('session-id'),
    file: pick('file'),
    duration: Number(pick('duration') ?? '60'),
  };
  options.baseUrl = options.baseUrl.replace(/\/+$/, '');
  return options;
}

// A JSON REST call that fails loudly (status and body) on anything but 2xx.
export async function restJson(url, { token, method = 'GET', body } = {}) {
  const response = await fetch(url, {
    method,
    headers: {
      Authorization: `Bearer ${token}`,
      ...(body === undefined ? {} : { 'Content-Type': 'application/json' }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  if (!response.ok) {
    throw new Error(`${method} ${url} answered ${response.status}: ${text}`);
  }
  return JSON.parse(text);
}

export function progressLogger(label) {
  return (bytesUploaded, bytesTotal) => {
    const percentage = ((bytesUploaded / bytesTotal) * 100).toFixed(2);
    process.stderr.write(`${label}: uploaded ${percentage}%\n`);
  };
}

export function print(result) {
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

export function fail(error) {
  process.stderr.write(`${error instanceof Error ? error.stack ?? error.message : error}\n`);
  process.exit(1);
}
