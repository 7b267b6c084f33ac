"""`python -m streamlit …` without recsys.serving's settings (BLAS threads, switch interval,
frozen heap): the baseline of bench/reliability.py's settings test.

The settings are switched off in this process only, by replacing the functions the app
calls, so the app itself has no switch for them.
"""
import sys

import recsys.serving

recsys.serving.configure = lambda: None
recsys.serving.settle_heap = lambda: None

from streamlit.web.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.argv[0] = "streamlit"
    sys.exit(main())
