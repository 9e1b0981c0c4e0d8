"""The plain values every layer shares: the upload and session records, and the error table.

Nothing here imports a framework or a database library; the layers above pass these around.
"""
