"""Report: tables, figures and formatting shared by the chapters' pages (`present`), the chapter contract and its
registry (`chapter`), and the scorecard of every claim (`scorecard`).
"""
