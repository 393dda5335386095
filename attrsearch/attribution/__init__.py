"""Attribution methods: anything that maps images (B, 3, H, W) to per-class maps (B, C, H, W)."""
