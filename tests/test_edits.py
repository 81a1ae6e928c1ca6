"""The learner's file at each step, from the page: an excerpt with `...`
elisions put into their previous version, and the files followed through
cp and mv, with the lesson's code/ only where the page shows none."""

from __future__ import annotations

from lab.edits import Files, merge

SCRIPT = """import time

def slow(x):
  time.sleep(1)
  return x+1

def main():
  a=slow(1)
  b=slow(2)
  print("sum="+str(a+b))

if __name__=="__main__":
  start=time.time()
  main()
  print("wall:"+str(time.time()-start))""".splitlines()


def test_a_whole_file_is_the_file():
    assert merge(SCRIPT, ["print(1)"]) == ["print(1)"]


def test_a_new_body_for_a_header_replaces_the_old_body_whole():
    shown = ["import time", "import dask", "", "...", "", "def main():", "  a=dask.delayed(slow)(1)",
             "  b=dask.delayed(slow)(2)", "  #total=(a+b).compute()", "  ", "..."]
    merged = merge(SCRIPT, shown)
    assert merged[:2] == ["import time", "import dask"]
    main = merged.index("def main():")
    assert merged[main + 1:main + 4] == ["  a=dask.delayed(slow)(1)", "  b=dask.delayed(slow)(2)",
                                         "  #total=(a+b).compute()"]
    assert 'print("sum="+str(a+b))' not in "\n".join(merged)  # the old body is gone
    assert merged[-3:] == SCRIPT[-3:] and "def slow(x):" in merged  # what the elisions stand for stays


def test_lines_commented_in_or_out_are_the_same_lines():
    before = merge(SCRIPT, ["...", "def main():", "  a=slow(1)", "  #b=slow(2)", "  #print(a)", "..."])
    after = merge(before, ["...", "def main():", "  ...", "  b=slow(2)", "  print(a)", "..."])
    main = after.index("def main():")
    assert after[main:main + 4] == ["def main():", "  a=slow(1)", "  b=slow(2)", "  print(a)"]
    assert after.count("  b=slow(2)") == 1 and "  #b=slow(2)" not in after


def test_lines_added_after_the_last_shared_line_keep_the_rest_of_the_body():
    shown = ["...", "def main():", "  a=slow(1)", "  b=slow(2)", "  c=slow(3)", "..."]
    merged = merge(SCRIPT, shown)
    main = merged.index("def main():")
    assert merged[main:main + 5] == ["def main():", "  a=slow(1)", "  b=slow(2)", "  c=slow(3)",
                                     '  print("sum="+str(a+b))']


def test_a_line_matches_only_under_the_same_header():
    """`start=time.time()` in main is not the one under `if __name__`: the
    excerpt's new main must not swallow the lines between them."""
    shown = ["...", "def main():", "  start=time.time()", "  total=slow(1)", "  print(total)", "..."]
    merged = merge(SCRIPT, shown)
    assert 'if __name__=="__main__":' in merged and merged.count("  start=time.time()") == 2
    main = merged.index("def main():")
    assert merged[main + 1:main + 4] == shown[2:5] and "  a=slow(1)" not in merged


def test_a_changed_line_after_the_shared_ones_is_replaced_not_kept_twice():
    shown = ["...", "def main():", "  a=slow(1)", "  b=slow(2)", '  print("total="+str(a+b))', "..."]
    merged = merge(SCRIPT, shown)
    assert '  print("total="+str(a+b))' in merged and '  print("sum="+str(a+b))' not in merged


def test_files_follow_the_learners_copies_and_fall_back_to_code(tmp_path):
    (tmp_path / "last.py").write_text("print('the last version')\n")
    files = Files([tmp_path])
    assert files.current("last.py") == ["print('the last version')"]  # the page never showed it
    lines, how = files.edit("hello.py", SCRIPT)
    assert lines == SCRIPT and how == "as the page shows it"
    files.shell("cp hello.py ./copy.py")
    lines, how = files.edit("copy.py", ["...", "def main():", "  print('copy')", "..."])
    assert how == "the page's excerpt put into the learner's previous version" and "  print('copy')" in lines
    assert files.current("hello.py") == SCRIPT  # the copy's edit is the copy's alone
    files.shell("mv copy.py moved.py")
    assert files.current("moved.py") == lines
    lines, how = files.edit("nowhere.py", ["import os", "...", "print(os.sep)"])
    assert lines == ["import os", "print(os.sep)"] and how.startswith("the page shows part of it and the rest")


def test_an_excerpt_without_an_elision_at_an_end_is_the_files_start_or_end():
    base = ["# version 1", *SCRIPT]
    merged = merge(base, ["# version 2", "import time", "...", 'if __name__=="__main__":', "  main()"])
    assert merged[:2] == ["# version 2", "import time"] and "# version 1" not in merged  # its start
    assert merged[-2:] == ['if __name__=="__main__":', "  main()"]  # its end: the old timing lines are gone
    assert "def slow(x):" in merged


def test_a_changed_line_with_no_line_shared_exactly_replaces_the_line_most_like_it():
    base = ["import os", "", 'print(f"Hello from {os.uname().nodename}")']
    merged = merge(base, ["...", 'print(f"Hello from {os.uname().nodename} in job {os.getpid()}")'])
    assert merged == ["import os", "", 'print(f"Hello from {os.uname().nodename} in job {os.getpid()}")']
