"""Target lists in, validated ``Target`` records out: pure, no network. One pass down:
``table`` reads text cells with line numbers, ``coords``/``motion``/``images`` turn columns
into values, ``rows`` parses every row, ``dedupe`` finds the rows asking the same question,
``read`` makes the targets and raises one error listing every problem."""
