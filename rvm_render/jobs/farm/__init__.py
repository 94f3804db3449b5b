"""Farm jobs from a segment plan, one task per segment: Open Job Description and OpenCue."""
