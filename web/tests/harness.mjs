// What the browser checks under web/tests share: settings from the environment, timestamped
// progress on stderr, and waits that fail with a message instead of hanging.

// The environment variable `name`; a check started without it fails at once, naming it.
export function required(name) {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
}

// Progress lines on stderr, `[label +seconds] message`: pytest shows them when a check fails.
export function stepper(label) {
  const started = Date.now();
  return (message) => {
    process.stderr.write(`[${label} +${((Date.now() - started) / 1000).toFixed(1)}s] ${message}\n`);
  };
}

// `promise`, or a failure after `ms` (the timer is cleared, so it never keeps node running).
export async function within(promise, ms, message) {
  let timer;
  const timeout = new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(message)), ms); });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
