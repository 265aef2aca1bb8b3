"""One widget per module; widgets observe the document and never load data themselves."""
