"""The results that go out: fetching result files through the guard, saving them to
`CUTOUT_OUTPUT_DIR`, previews and contact sheets, and work done once per key. A change to what a
finished result brings with it belongs here."""
