"""sentence-transformers checkpoints, both ways: a recipe read from one (:mod:`.reading`), the files found
locally or on the Hub (:mod:`.files`), a checkpoint of ours written so that sentence-transformers loads it
too (:mod:`.writing`), and the ``Dense`` layers it may carry run after pooling (:mod:`.dense`)."""
