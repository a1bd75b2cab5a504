"""Dataset format (ClsDataset), its parser, transforms and loaders."""
