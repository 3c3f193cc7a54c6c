"""Webhooks: signing (the guide's header and Standard Webhooks) and URL safety.

Registration and delivery build on these (issue 4); both modules here are pure.
"""
