"""Feedback: what Muse posted and what the server thought of it (see `genmodels.feedback.store`)."""
