"""The images that come in: every form an image argument takes (URL, local path, `data:` URI,
`upload:`), which local paths may be read, the image rules cutout.pro enforces, the pre-flight
check, the SSRF-safe network guard, staging in the operator's bucket, and uploads. A change to how
an image reaches cutout.pro, or is refused before anything is paid, belongs here."""
