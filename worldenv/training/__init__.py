"""Training loops: the generic loop (resume, EMA, logging, DDP) and one task per
model (tokenizer, teacher), each a loss on batches drawn from a dataset."""
