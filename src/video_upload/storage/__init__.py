"""Where upload bytes live: a local folder or an S3 bucket (multipart), behind one interface."""
