"""One module per flow: trader filing, officer review, trader documents and payments."""
