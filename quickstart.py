"""The whole life of a tiny ConvBERT in one offline command (see convbert_tf/quickstart/__main__.py).

  python quickstart.py                               # writes quickstart_output/
  python quickstart.py --quick                       # the reduced run CI uses
"""

from convbert_tf.quickstart import __main__ as quickstart

if __name__ == "__main__":
    quickstart.run()
