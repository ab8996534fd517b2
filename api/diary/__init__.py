"""The e-production diary pages (nhật ký sản xuất điện tử): a cooperative records harvest, a packhouse packing."""
