"""One module per venue with everything about it, and the registry that names them."""
