"""Notebook plumbing: set-up and figures, records, parameter checks, plotting helpers, and the
papermill runner and batch runs of the two jobs.

May import the theory and LLM layers; neither imports it.
"""
