import tally

print(tally.total(1000000))
