"""Data: datasets by name (`registry`), the image datasets (`datasets`), point sets (`pointsets`, `modelnet`,
`jets`), device-resident batches and augmentation (`device_loader`), splits and folds (`splits`), symmetry
transformations (`symmetry`), torchvision import (`tv`).
"""
