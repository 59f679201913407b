"""Report: tables, figures and formatting shared by the chapters' pages (`present`), the chapter contract and its
registry (`chapter`), the scorecard of every claim (`scorecard`), the verdict boxes that open each chapter
(`verdict_box`) and the "What we found" synthesis (`findings`).
"""
