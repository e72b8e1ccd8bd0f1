"""Pre-train one configuration on SciFact's corpus alone and measure what it gave, with and without labels.

    .venv/bin/python -m benchmarks.pretrain_scifact --queries title --output /tmp/pre/title
    .venv/bin/python -m benchmarks.pretrain_scifact --queries inverse-cloze --output /tmp/pre/ict \\
        --cache /tmp/pre/cache --epochs 1 --batch-size 32 --set learning_rate=5e-5 temperature=0.05

One run is one configuration, through the package's own code path (:func:`simlm_haystack.pretraining.run.run`,
what ``simlm-haystack pretrain`` calls):

1. the corpus is SciFact's ``corpus.jsonl`` (5,183 abstracts; no query, no judgement is read), with its
   titles, or without them (``--titles ignore``, the default for every query source but ``title``: the
   pseudo-queries then come from the abstracts alone, as for a corpus that has no titles);
2. ``--heldout-share`` of the (pseudo-query, passage) pairs are held out of training; the starting
   model is scored on them (MRR@10 of each held-out pseudo-query finding its passage among the whole
   corpus) read its own way (``minilm`` for all-MiniLM-L6-v2) and, if ``--recipe`` names another
   reading, read that way too; and zero-shot nDCG@10 on SciFact **test** and on a **dev** split of
   ``--dev-queries`` train queries (the same fixed draw as ``benchmarks.train_scifact --dev-queries``: settings
   are chosen on dev and on the label-free check, never on test), both from one index of the corpus
   (:func:`simlm_haystack.evaluation.evaluate`, in-memory Qdrant, our embedders, as
   :class:`~simlm_haystack.training.RetrievalEvaluator` measures);
3. pre-training (``--max-steps``, ``--epochs`` or ``--pretrain-minutes`` of wall time);
4. the result is scored the same ways; optionally (``--fine-tune``) it is then fine-tuned and
   evaluated by ``benchmarks.train_scifact`` (as BENCHMARKS.md's fine-tuning, through the recipe
   pre-trained; one run per ``--seeds``).

``--cache DIR`` keeps the starting model's scores (keyed by its weights, the recipe and the exact
check), so a campaign measures the start once. ``--set FIELD=VALUE`` sets any field of
``PretrainingArguments`` or ``PretrainingDataArguments`` (``--set freeze_layers=3 qc_mask_rate=0.15``).
``--slice N`` builds a small collection (the first N documents, the queries that judge only them) for a
smoke test. The result (``OUTPUT/result.json``): the configuration, machine, loads, timings, seconds per
step, the logged losses and the package's report (``pretraining_report.json``: every reading's scores,
the verdict), and ``judged``: the start's and the result's test and dev scores. ``--campaign-log FILE``
adds the run's summary to a JSON list there under ``--name`` (replacing an entry of that name), so a
campaign of runs keeps one record that an interruption does not lose. Issue 12's runs in BENCHMARKS.md
used this script as it was at commit 66998d0.

Modules: :mod:`.arguments` (the command line), :mod:`.collection_files` (the slice and the corpus without
titles), :mod:`.judged` (the labelled scores), :mod:`.campaign` (fine-tuning after, and the campaign log),
``__main__`` (one run).
"""
