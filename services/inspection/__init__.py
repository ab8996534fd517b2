"""The inspection service: gate camera images in, ocr/ reads out, matched against the declarations expected."""
