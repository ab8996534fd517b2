"""Gate OCR library: ISO 6346 container codes, size types, seal barcodes and QR codes from door photos."""
