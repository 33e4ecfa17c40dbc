"""Exports: stored detections as files other tools read (COCO JSON, YOLO labels, CSV).

`formats` turns pages of detection records into bytes (pure, synchronous, no I/O but a
temporary spool); `service` pages through the database and runs the formatting off the event
loop. Decisions: docs/adr/0015-exports.md.
"""
