"""Pieces of the two related systems sursmr draws on: PSNR-matched distortions (PCMP-style pairs) and a
Re-IQA-style self-supervised quality encoder (MoCo contrastive training) with its ridge regressor."""
