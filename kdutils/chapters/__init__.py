"""One folder per paper. Each `chapters/<paper>/__init__.py` exports `CHAPTER` (a `kdutils.report.chapter.Chapter`);
the scorecard, the CLI and the book's table-of-contents check discover chapters here. A chapter imports the
core, never another chapter.
"""
