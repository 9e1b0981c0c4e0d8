import * as tus from 'tus-js-client';

// Initialize upload
const response = await fetch('/api/v1/videos/upload/init', {
  method: 'POST',
  headers: {
    'Authorization': `Bearer ${token}`,
    'Content-Type': 'application/json'
  },
  body: JSON.stringify({
    session_id: sessionId,
    filename: 'practice_video.mp4',
    file_size: file.size,
    duration_seconds: videoDuration
  })
});

const { upload_id: uploadId, upload_url } = await response.json();

// Create TUS upload
const upload = new tus.Upload(file, {
  endpoint: upload_url,
  retryDelays: [0, 3000, 5000, 10000, 20000],
  metadata: {
    filename: file.name,
    filetype: file.type,
    session_id: sessionId
  },
  headers: {
    'Authorization': `Bearer ${token}`
  },
  chunkSize: 5242880, // 5MB
  onError: (error) => {
    console.error('Upload failed:', error);
  },
  onProgress: (bytesUploaded, bytesTotal) => {
    const percentage = (bytesUploaded / bytesTotal * 100).toFixed(2);
    console.log(`Uploaded ${percentage}%`);
  },
  onSuccess: () => {
    console.log('Upload completed');
    // Complete the upload
    fetch('/api/v1/videos/upload/complete', {
      method: 'POST',
      headers: {
        'Authorization': `Bearer ${token}`,
        'Content-Type': 'application/json'
      },
      body: JSON.stringify({ upload_id: uploadId })
    });
  }
});

// Start upload
upload.start();

// Pause upload
upload.abort();

// Resume upload
upload.start();
