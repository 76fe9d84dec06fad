"""Experiment code behind the book's figures, one module per topic.

The chapters call these functions (plumbing hidden on the page) so that the code is tested
and shared rather than pasted into notebooks.
"""
