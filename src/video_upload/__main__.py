from video_upload.cli import main

raise SystemExit(main())
