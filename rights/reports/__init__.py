"""Read models for the officers' dashboard: the work queue and the reporting figures.

May use: every other area (it only reads).
"""
