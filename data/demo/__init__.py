"""The synthetic demo study area's files (not a real place); see README.md here.

Data only: read them with :func:`lifecircle.datasets.demo_data`.
"""
