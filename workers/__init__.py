"""Worker processes: workflows and activities, horizontally scalable by task queue."""
