"""Network layers: the frame tokenizer, the block-causal transformer backbone,
its conditioning embeddings and the reward/termination heads."""
