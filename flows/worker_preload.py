"""What the worker server imports once, so that every worker forked from it starts ready: the
feed parser, the extractor, the classifier and its language identifier, and the current model
when the command that started the server said which it is.

The workers are the poll's parallelism (one per core); a numerical library that started its
own thread pool in each of them would only compete with the others for the same cores.
"""

import contextlib
import os
from pathlib import Path

for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(variable, "1")

import feedparser  # noqa: E402, F401
import trafilatura  # noqa: E402, F401

import classifiers  # noqa: E402
from flows.modelstore import WORKER_MODEL_VARIABLE, cached_model  # noqa: E402

# Whatever fails here is left to the workers, which do it again and report why: the server
# itself must start, or no feed could be parsed either.
with contextlib.suppress(Exception):
    classifiers.detect_language("warm-up")  # py3langid loads its model on first use: 0.5 s
_model = os.environ.get(WORKER_MODEL_VARIABLE)
if _model is not None:
    with contextlib.suppress(Exception):
        cached_model(Path(_model) if _model else None)
