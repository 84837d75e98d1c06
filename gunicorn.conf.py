"""gunicorn settings for production: `gunicorn 'app:create_app()'` picks this file up."""

import multiprocessing

bind = "127.0.0.1:8000"
workers = min(4, multiprocessing.cpu_count() * 2)
# Threads, not one request per process: the public request form answers no sooner than
# LETHE_PUBLIC_FORM_MIN_SECONDS (0.4 s, so timing does not tell a member's address from a new
# one), and that wait sleeps a thread, not a whole worker. Capacity for form posts is
# workers × threads / 0.4 s: 4 × 8 / 0.4 = 80 posts a second here, far above the per-address
# rate limit, while other pages go on being served beside the sleeping threads.
worker_class = "gthread"
threads = 8
accesslog = "-"
# No query strings, referrers or user agents in access lines; web/logging.py redacts the
# tokens of emailed links from the paths.
access_log_format = '%(h)s %(t)s "%(m)s %(U)s" %(s)s %(B)s %(M)sms'
