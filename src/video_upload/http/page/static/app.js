// The upload page: token, practice session, a resumable tus upload, the session's videos.
//
// Plain browser JavaScript, no framework and no build step. tus-js-client (window.tus) is served
// by the service itself from /ui/vendor/tus.min.js.
'use strict';

(function () {
  const API = '/api/v1';
  const TUS_ENDPOINT = new URL(API + '/videos/tus', window.location.href).href;
  // The chunk size the service suggests (5 MiB, like the mobile apps; a whole part on S3), from
  // the page's <meta>. `?chunkSize=N` (bytes) overrides it: smaller chunks lose less on a very
  // flaky link, and the browser test uses them to pause mid-upload.
  const CHUNK_SIZE = chunkSizeFromQuery() || suggestedChunkSize() || 5 * 1024 * 1024;
  const RETRY_DELAYS = [0, 1000, 3000, 5000, 10000, 20000];
  const KEYS = { token: 'videoUpload.token', sessions: 'videoUpload.sessions', session: 'videoUpload.session' };

  const $ = (id) => document.getElementById(id);
  const el = {
    notice: $('notice'), token: $('token'), saveToken: $('save-token'), tokenState: $('token-state'),
    sessionSelect: $('session-select'), sessionName: $('session-name'), createSession: $('create-session'),
    sessionPaste: $('session-paste'), useSession: $('use-session'),
    file: $('file'), fileName: $('file-name'), start: $('start'), pause: $('pause'), resume: $('resume'),
    progress: $('progress'), progressText: $('progress-text'), status: $('status'),
    refresh: $('refresh'), videos: $('videos'), videosEmpty: $('videos-empty'),
    playerBox: $('player-box'), player: $('player'), playerCaption: $('player-caption'),
  };

  let upload = null; // the current tus.Upload
  let uploadState = 'idle'; // idle | uploading | paused | completing | done | error
  let playing = null; // { video, expiresAt } of what the player holds

  // -- small helpers -----------------------------------------------------------------------

  function chunkSizeFromQuery() {
    const value = Number(new URLSearchParams(window.location.search).get('chunkSize'));
    return Number.isInteger(value) && value >= 1024 ? value : 0;
  }

  function suggestedChunkSize() {
    const meta = document.querySelector('meta[name="upload-chunk-size"]');
    const value = Number(meta && meta.content);
    return Number.isInteger(value) && value >= 1024 ? value : 0;
  }

  function load(key, fallback) {
    try {
      const value = window.localStorage.getItem(key);
      return value === null ? fallback : JSON.parse(value);
    } catch (_error) {
      return fallback;
    }
  }

  function save(key, value) {
    window.localStorage.setItem(key, JSON.stringify(value));
  }

  function humanSize(bytes) {
    if (bytes === null || bytes === undefined) return '—';
    const units = ['B', 'KiB', 'MiB', 'GiB'];
    let value = bytes;
    let unit = 0;
    while (value >= 1024 && unit < units.length - 1) {
      value /= 1024;
      unit += 1;
    }
    return unit === 0 ? `${bytes} B` : `${value.toFixed(1)} ${units[unit]}`;
  }

  function say(message, kind) {
    el.status.textContent = message;
    el.status.dataset.kind = kind || 'info';
  }

  function token() {
    return (load(KEYS.token, '') || '').trim();
  }

  function sessionId() {
    return el.sessionSelect.value;
  }

  function authHeaders() {
    return { Authorization: 'Bearer ' + token() };
  }

  // REST calls: JSON in and out; the API's `{"error": {"message"}}` becomes the Error's text.
  async function api(path, options) {
    const init = Object.assign({ method: 'GET' }, options || {});
    init.headers = Object.assign(authHeaders(), init.body ? { 'Content-Type': 'application/json' } : {});
    if (init.body) init.body = JSON.stringify(init.body);
    const response = await fetch(API + path, init);
    const text = await response.text();
    let data = null;
    try {
      data = text ? JSON.parse(text) : null;
    } catch (_error) {
      data = null;
    }
    if (!response.ok) {
      const message = data && data.error ? data.error.message : text || response.statusText;
      throw new Error(`${message} (${response.status})`);
    }
    return data;
  }

  // -- token -------------------------------------------------------------------------------

  function describeToken(value) {
    if (!value) return 'No token saved.';
    try {
      const part = value.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
      const claims = JSON.parse(atob(part.padEnd(part.length + ((4 - (part.length % 4)) % 4), '=')));
      const expires = claims.exp ? new Date(claims.exp * 1000) : null;
      const expired = expires && expires.getTime() < Date.now();
      return `Signed in as ${claims.sub}` +
        (expires ? (expired ? ' — this token has expired.' : `, until ${expires.toLocaleString()}.`) : '.');
    } catch (_error) {
      return 'Token saved (it does not look like a JWT).';
    }
  }

  function saveToken() {
    save(KEYS.token, el.token.value.trim());
    el.tokenState.textContent = describeToken(token());
    refreshButtons();
    refreshVideos();
  }

  // -- sessions (the API has no "my sessions" list: the ones used here are remembered) -------

  function knownSessions() {
    const sessions = load(KEYS.sessions, []);
    return Array.isArray(sessions) ? sessions.filter((item) => item && item.id) : [];
  }

  function renderSessions(selected) {
    const sessions = knownSessions();
    el.sessionSelect.replaceChildren();
    if (!sessions.length) {
      el.sessionSelect.append(new Option('— no session yet —', ''));
    }
    for (const session of sessions) {
      const label = session.name ? `${session.name} · ${session.id.slice(0, 8)}` : session.id;
      el.sessionSelect.append(new Option(label, session.id));
    }
    if (selected) el.sessionSelect.value = selected;
  }

  function rememberSession(session) {
    const others = knownSessions().filter((item) => item.id !== session.id);
    save(KEYS.sessions, [{ id: session.id, name: session.name || '' }, ...others]);
    save(KEYS.session, session.id);
    renderSessions(session.id);
    refreshButtons();
    refreshVideos();
  }

  async function createSession() {
    try {
      const session = await api('/sessions', { method: 'POST', body: { name: el.sessionName.value.trim() } });
      el.sessionName.value = '';
      rememberSession(session);
      say(`Session "${session.name || session.id}" created.`, 'ok');
    } catch (error) {
      say(`Could not create a session: ${error.message}`, 'error');
    }
  }

  async function useSession() {
    const id = el.sessionPaste.value.trim();
    if (!id) return;
    try {
      const session = await api(`/sessions/${encodeURIComponent(id)}`);
      el.sessionPaste.value = '';
      rememberSession(session);
      say(`Using session "${session.name || session.id}".`, 'ok');
    } catch (error) {
      say(`Cannot use that session: ${error.message}`, 'error');
    }
  }

  // -- upload ------------------------------------------------------------------------------

  function setUploadState(state) {
    uploadState = state;
    document.body.dataset.uploadState = state;
    refreshButtons();
  }

  function refreshButtons() {
    const ready = Boolean(window.tus && token() && sessionId() && el.file.files.length);
    const busy = uploadState === 'uploading' || uploadState === 'paused' || uploadState === 'completing';
    el.start.disabled = !ready || busy;
    el.pause.disabled = uploadState !== 'uploading';
    el.resume.disabled = uploadState !== 'paused' && !(uploadState === 'error' && upload);
    el.file.disabled = busy;
  }

  function showProgress(sent, total) {
    const percent = total ? (sent / total) * 100 : 0;
    el.progress.value = percent;
    el.progressText.textContent = `${humanSize(sent)} of ${humanSize(total)} (${percent.toFixed(1)} %)`;
  }

  async function startUpload() {
    const file = el.file.files[0];
    const session = sessionId();
    if (!file || !session || !window.tus) return;
    upload = new window.tus.Upload(file, {
      endpoint: TUS_ENDPOINT,
      chunkSize: CHUNK_SIZE,
      retryDelays: RETRY_DELAYS,
      metadata: { filename: file.name, filetype: file.type || 'application/octet-stream', session_id: session },
      headers: authHeaders(),
      // Same file to another session is another upload: the session is part of the fingerprint.
      fingerprint: (chosen, options) => Promise.resolve(
        ['video-upload', session, chosen.name, chosen.type, chosen.size, chosen.lastModified, options.endpoint].join('/'),
      ),
      removeFingerprintOnSuccess: true,
      onProgress: showProgress,
      onError: (error) => {
        setUploadState('error');
        say(`Upload stopped: ${error.message || error}. Press Resume to try again.`, 'error');
      },
      onSuccess: () => completeUpload(),
    });
    setUploadState('uploading');
    say(`Uploading ${file.name}…`);
    try {
      const previous = await upload.findPreviousUploads();
      if (previous.length) {
        previous.sort((a, b) => String(b.creationTime).localeCompare(String(a.creationTime)));
        upload.resumeFromPreviousUpload(previous[0]);
        say(`Resuming an earlier upload of ${file.name}…`);
      }
    } catch (_error) {
      // No storage for fingerprints (private mode): a fresh upload is fine.
    }
    upload.start();
  }

  async function pauseUpload() {
    if (!upload || uploadState !== 'uploading') return;
    setUploadState('paused');
    await upload.abort();
    say('Paused. Press Resume to continue from where the server stopped.');
  }

  function resumeUpload() {
    if (!upload) return;
    upload.options.headers = authHeaders(); // a token saved meanwhile is used from now on
    setUploadState('uploading');
    say('Resuming…');
    upload.start();
  }

  async function completeUpload() {
    setUploadState('completing');
    // The tus upload id is the last path segment of the upload URL.
    const uploadId = upload.url.split('/').filter(Boolean).pop();
    try {
      const video = await api('/videos/upload/complete', { method: 'POST', body: { upload_id: uploadId } });
      setUploadState('done');
      say(`Uploaded ${video.filename || 'the video'}.`, 'ok');
      el.file.value = '';
      el.fileName.textContent = 'Pick a video on this device.';
      upload = null;
    } catch (error) {
      setUploadState('error');
      say(`The bytes arrived, but the server did not accept the video: ${error.message}`, 'error');
    }
    refreshButtons();
    await refreshVideos();
  }

  // -- the session's videos ----------------------------------------------------------------

  let listing = 0; // the latest refresh wins: an older answer arriving late is dropped

  async function refreshVideos() {
    const session = sessionId();
    const mine = ++listing;
    if (!session || !token()) {
      el.videos.replaceChildren();
      el.videosEmpty.hidden = false;
      el.videosEmpty.textContent = 'Choose a session to see its videos.';
      return;
    }
    try {
      const videos = await api(`/sessions/${encodeURIComponent(session)}/videos`);
      if (mine !== listing) return;
      el.videos.replaceChildren(...videos.map(videoItem));
      el.videosEmpty.hidden = videos.length > 0;
      el.videosEmpty.textContent = 'No videos yet.';
    } catch (error) {
      if (mine !== listing) return;
      el.videos.replaceChildren();
      el.videosEmpty.hidden = false;
      el.videosEmpty.textContent = `Cannot list the videos: ${error.message}`;
    }
  }

  function videoItem(video) {
    const item = document.createElement('li');
    item.className = 'video';
    item.dataset.videoId = video.id;
    item.dataset.status = video.status;
    const name = document.createElement('span');
    name.className = 'video-name';
    name.textContent = video.filename || '(unnamed)';
    const status = document.createElement('span');
    status.className = `badge badge-${video.status}`;
    status.textContent = video.status;
    const details = document.createElement('span');
    details.className = 'video-details';
    details.textContent = `${humanSize(video.size)} · ${Number(video.percentage).toFixed(0)} %` +
      ` · ${new Date(video.created_at).toLocaleString()}`;
    if (video.status === 'rejected' && video.rejection_reason) {
      details.textContent += ` · ${video.rejection_reason}`;
    }
    item.append(name, status, details);
    if (video.has_thumbnail) item.prepend(thumbnailOf(video));
    if (video.upload_completed && video.status !== 'rejected') {
      const play = document.createElement('button');
      play.type = 'button';
      play.className = 'small play';
      play.textContent = 'Play';
      play.addEventListener('click', () => playVideo(video, play));
      item.append(play);
    }
    return item;
  }

  // Thumbnails need the token too, so they are fetched into Blob URLs (they are small).
  function thumbnailOf(video) {
    const image = document.createElement('img');
    image.className = 'thumb';
    image.alt = '';
    fetch(`${API}/videos/${encodeURIComponent(video.id)}/thumbnail`, { headers: authHeaders() })
      .then((response) => (response.ok ? response.blob() : null))
      .then((blob) => { if (blob) image.src = URL.createObjectURL(blob); })
      .catch(() => image.remove());
    return image;
  }

  // Playback. A <video src> request cannot carry the Authorization header, so the page asks the
  // server for a short-lived signed URL (`/playback`: a presigned S3 URL, or the content
  // endpoint with a signature) and hands it to the player, which streams it with Range
  // requests: playback starts at once and seeking fetches only what it needs. A URL that
  // expires while the video is paused is renewed on the player's error, where it stopped.
  async function playbackUrl(video) {
    const answer = await api(`/videos/${encodeURIComponent(video.id)}/playback`);
    return { url: answer.url, expiresAt: Date.parse(answer.expires_at) };
  }

  async function playVideo(video, button) {
    button.disabled = true;
    el.playerCaption.textContent = `Loading ${video.filename}…`;
    el.playerBox.hidden = false;
    try {
      const { url, expiresAt } = await playbackUrl(video);
      playing = { video, expiresAt };
      el.player.src = url;
      el.player.dataset.videoId = video.id;
      el.playerCaption.textContent = `${video.filename} · ${humanSize(video.size)}`;
      el.player.play().catch(() => { /* autoplay refused: the controls are there */ });
    } catch (error) {
      el.playerCaption.textContent = `Cannot play ${video.filename}: ${error.message}`;
    } finally {
      button.disabled = false;
    }
  }

  async function renewExpiredUrl() {
    if (!playing || Date.now() < playing.expiresAt) {
      if (playing) el.playerCaption.textContent = `Cannot play ${playing.video.filename}.`;
      return;
    }
    const { video } = playing;
    const position = el.player.currentTime;
    try {
      const { url, expiresAt } = await playbackUrl(video);
      playing = { video, expiresAt };
      el.player.src = url;
      el.player.currentTime = position;
    } catch (error) {
      el.playerCaption.textContent = `Cannot play ${video.filename}: ${error.message}`;
    }
  }

  // -- start -------------------------------------------------------------------------------

  async function explainMissingTus() {
    let message = 'tus-js-client is not installed: run `make setup`, then reload this page.';
    try {
      const response = await fetch('/ui/vendor/tus.min.js', { method: 'GET' });
      if (!response.ok) message = (await response.text()).trim() || message;
    } catch (_error) {
      // keep the default message
    }
    el.notice.textContent = message;
    el.notice.hidden = false;
  }

  function init() {
    el.token.value = token();
    el.tokenState.textContent = describeToken(token());
    renderSessions(load(KEYS.session, ''));
    el.saveToken.addEventListener('click', saveToken);
    el.token.addEventListener('keydown', (event) => { if (event.key === 'Enter') saveToken(); });
    el.createSession.addEventListener('click', createSession);
    el.useSession.addEventListener('click', useSession);
    el.sessionSelect.addEventListener('change', () => {
      save(KEYS.session, sessionId());
      refreshButtons();
      refreshVideos();
    });
    el.file.addEventListener('change', () => {
      const file = el.file.files[0];
      el.fileName.textContent = file ? `${file.name} · ${humanSize(file.size)}` : 'Pick a video on this device.';
      if (uploadState === 'done' || uploadState === 'error') setUploadState('idle');
      upload = uploadState === 'idle' ? null : upload;
      refreshButtons();
    });
    el.start.addEventListener('click', startUpload);
    el.pause.addEventListener('click', pauseUpload);
    el.resume.addEventListener('click', resumeUpload);
    el.refresh.addEventListener('click', refreshVideos);
    el.player.addEventListener('error', renewExpiredUrl);
    if (!window.tus || !window.tus.isSupported) explainMissingTus();
    refreshButtons();
    refreshVideos();
  }

  init();
})();
