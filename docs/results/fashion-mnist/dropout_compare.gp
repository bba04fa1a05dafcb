# drawn by `study`; redraw with: gnuplot dropout_compare.gp
if (!exists('out')) out = 'dropout_compare.png'
set terminal pngcairo noenhanced size 1700,520 font 'sans,10'
set output out
$sum << EOD
# Without Dropout (seed 0)
1 1.52668276 0.950450611 0.4276 0.669
2 0.886747555 0.820318244 0.684 0.698
3 0.688713641 0.627603688 0.7536 0.767333333
4 0.609932502 0.577724617 0.779 0.783666667
5 0.53160704 0.510744765 0.8094 0.796666667


# Without Dropout (seed 1)
1 1.50666547 1.13130274 0.4671 0.577333333
2 0.847706131 0.8167989 0.6949 0.676666667
3 0.718259948 0.685631261 0.7421 0.731333333
4 0.587145455 0.530431258 0.7871 0.808666667
5 0.516829325 0.47426393 0.8154 0.827333333


# Without Dropout (seed 2)
1 1.50921858 1.13847794 0.4657 0.600666667
2 0.812420793 0.802299678 0.719 0.709333333
3 0.678869004 0.618709077 0.7553 0.766333333
4 0.574501698 0.524277505 0.7947 0.790666667
5 0.517975279 0.477797598 0.8136 0.818666667


# Dropout(p=0.5) (seed 0)
1 2.30020324 2.43150804 0.1243 0.109
2 2.25747604 2.48748458 0.1432 0.104333333
3 2.22121896 2.46960055 0.1614 0.104333333
4 2.20652615 2.47835045 0.17 0.104333333
5 2.1974105 2.4420375 0.1738 0.104333333


# Dropout(p=0.5) (seed 1)
1 2.28745459 2.63376789 0.13 0.101333333
2 2.25733378 2.63291021 0.1409 0.104333333
3 2.25182811 2.55942662 0.1415 0.101333333
4 2.24170449 2.52900081 0.1434 0.101333333
5 2.22748441 2.48922707 0.1612 0.101333333


# Dropout(p=0.5) (seed 2)
1 2.3112967 2.38034559 0.1065 0.104333333
2 2.29370074 2.4419502 0.1197 0.101333333
3 2.29226101 2.3707708 0.1204 0.101333333
4 2.27625264 2.43774417 0.1297 0.101333333
5 2.27465273 2.42600776 0.1275 0.101333333


# Dropout(p=0.2) (seed 0)
1 2.1485124 3.36937385 0.1827 0.104666667
2 1.51287863 1.90896118 0.4241 0.299666667
3 1.13173093 1.28925947 0.5745 0.511333333
4 0.973981292 1.19949942 0.6414 0.553333333
5 0.89480294 1.10154294 0.669 0.578333333


# Dropout(p=0.2) (seed 1)
1 2.14819495 4.80047482 0.1753 0.121
2 1.4912004 1.30764407 0.421 0.49
3 1.17283906 1.16904829 0.5436 0.558333333
4 1.05743191 0.98140258 0.5892 0.619333333
5 0.995251464 0.929994293 0.6162 0.644666667


# Dropout(p=0.2) (seed 2)
1 2.17391161 4.25717296 0.1724 0.101666667
2 1.43522242 1.43134309 0.4442 0.497666667
3 1.15729249 1.04922475 0.5573 0.579333333
4 1.00087464 0.9086272 0.6248 0.625666667
5 0.928113409 0.874936257 0.6543 0.640333333
EOD
$grad << EOD
# Without Dropout (seed 0)
1 0.0310661027
2 0.0270579285
3 0.0125218794
4 0.0268898539
5 0.0223342078


# Without Dropout (seed 1)
1 0.0322316366
2 0.0513847412
3 0.0246291926
4 0.0262667949
5 0.0236354711


# Without Dropout (seed 2)
1 0.0153630103
2 0.0197854751
3 0.0148010055
4 0.0291922934
5 0.0188289859


# Dropout(p=0.5) (seed 0)
1 1.63906845
2 0.770728886
3 0.64365229
4 0.962655071
5 0.694693994


# Dropout(p=0.5) (seed 1)
1 0.849312926
2 0.663232822
3 0.710559274
4 0.320229779
5 0.380504029


# Dropout(p=0.5) (seed 2)
1 1.05199398
2 0.835911174
3 0.560556909
4 0.571003899
5 0.429153987


# Dropout(p=0.2) (seed 0)
1 0.131740748
2 0.0424199208
3 0.0310055778
4 0.0366352668
5 0.0437100951


# Dropout(p=0.2) (seed 1)
1 0.0998894252
2 0.0333195889
3 0.0387115695
4 0.0210367318
5 0.0199301815


# Dropout(p=0.2) (seed 2)
1 0.0675345419
2 0.0535618176
3 0.0232503608
4 0.0296976115
5 0.0181180581
EOD
set grid
set xlabel 'epoch'
set key bottom left
set xtics 1
set multiplot layout 1,3 title 'dropout: VGG_38 with BN after ReLU, dropout after every batch norm'
set title 'error: validation solid, training dashed'
set ylabel 'cross-entropy loss'
set key top right
plot $sum index 0 using 1:3 with linespoints lw 2 pt 7 ps 0.5 lc 1 title 'Without Dropout (seed 0)', \
     $sum index 0 using 1:2 with linespoints lw 1 dt 2 pt 6 ps 0.4 lc 1 notitle, \
     $sum index 1 using 1:3 with linespoints lw 2 pt 7 ps 0.5 lc 1 title 'Without Dropout (seed 1)', \
     $sum index 1 using 1:2 with linespoints lw 1 dt 2 pt 6 ps 0.4 lc 1 notitle, \
     $sum index 2 using 1:3 with linespoints lw 2 pt 7 ps 0.5 lc 1 title 'Without Dropout (seed 2)', \
     $sum index 2 using 1:2 with linespoints lw 1 dt 2 pt 6 ps 0.4 lc 1 notitle, \
     $sum index 3 using 1:3 with linespoints lw 2 pt 7 ps 0.5 lc 2 title 'Dropout(p=0.5) (seed 0)', \
     $sum index 3 using 1:2 with linespoints lw 1 dt 2 pt 6 ps 0.4 lc 2 notitle, \
     $sum index 4 using 1:3 with linespoints lw 2 pt 7 ps 0.5 lc 2 title 'Dropout(p=0.5) (seed 1)', \
     $sum index 4 using 1:2 with linespoints lw 1 dt 2 pt 6 ps 0.4 lc 2 notitle, \
     $sum index 5 using 1:3 with linespoints lw 2 pt 7 ps 0.5 lc 2 title 'Dropout(p=0.5) (seed 2)', \
     $sum index 5 using 1:2 with linespoints lw 1 dt 2 pt 6 ps 0.4 lc 2 notitle, \
     $sum index 6 using 1:3 with linespoints lw 2 pt 7 ps 0.5 lc 3 title 'Dropout(p=0.2) (seed 0)', \
     $sum index 6 using 1:2 with linespoints lw 1 dt 2 pt 6 ps 0.4 lc 3 notitle, \
     $sum index 7 using 1:3 with linespoints lw 2 pt 7 ps 0.5 lc 3 title 'Dropout(p=0.2) (seed 1)', \
     $sum index 7 using 1:2 with linespoints lw 1 dt 2 pt 6 ps 0.4 lc 3 notitle, \
     $sum index 8 using 1:3 with linespoints lw 2 pt 7 ps 0.5 lc 3 title 'Dropout(p=0.2) (seed 2)', \
     $sum index 8 using 1:2 with linespoints lw 1 dt 2 pt 6 ps 0.4 lc 3 notitle
set title 'accuracy: validation solid, training dashed'
set ylabel 'accuracy'
set key bottom right
plot $sum index 0 using 1:5 with linespoints lw 2 pt 7 ps 0.5 lc 1 title 'Without Dropout (seed 0)', \
     $sum index 0 using 1:4 with linespoints lw 1 dt 2 pt 6 ps 0.4 lc 1 notitle, \
     $sum index 1 using 1:5 with linespoints lw 2 pt 7 ps 0.5 lc 1 title 'Without Dropout (seed 1)', \
     $sum index 1 using 1:4 with linespoints lw 1 dt 2 pt 6 ps 0.4 lc 1 notitle, \
     $sum index 2 using 1:5 with linespoints lw 2 pt 7 ps 0.5 lc 1 title 'Without Dropout (seed 2)', \
     $sum index 2 using 1:4 with linespoints lw 1 dt 2 pt 6 ps 0.4 lc 1 notitle, \
     $sum index 3 using 1:5 with linespoints lw 2 pt 7 ps 0.5 lc 2 title 'Dropout(p=0.5) (seed 0)', \
     $sum index 3 using 1:4 with linespoints lw 1 dt 2 pt 6 ps 0.4 lc 2 notitle, \
     $sum index 4 using 1:5 with linespoints lw 2 pt 7 ps 0.5 lc 2 title 'Dropout(p=0.5) (seed 1)', \
     $sum index 4 using 1:4 with linespoints lw 1 dt 2 pt 6 ps 0.4 lc 2 notitle, \
     $sum index 5 using 1:5 with linespoints lw 2 pt 7 ps 0.5 lc 2 title 'Dropout(p=0.5) (seed 2)', \
     $sum index 5 using 1:4 with linespoints lw 1 dt 2 pt 6 ps 0.4 lc 2 notitle, \
     $sum index 6 using 1:5 with linespoints lw 2 pt 7 ps 0.5 lc 3 title 'Dropout(p=0.2) (seed 0)', \
     $sum index 6 using 1:4 with linespoints lw 1 dt 2 pt 6 ps 0.4 lc 3 notitle, \
     $sum index 7 using 1:5 with linespoints lw 2 pt 7 ps 0.5 lc 3 title 'Dropout(p=0.2) (seed 1)', \
     $sum index 7 using 1:4 with linespoints lw 1 dt 2 pt 6 ps 0.4 lc 3 notitle, \
     $sum index 8 using 1:5 with linespoints lw 2 pt 7 ps 0.5 lc 3 title 'Dropout(p=0.2) (seed 2)', \
     $sum index 8 using 1:4 with linespoints lw 1 dt 2 pt 6 ps 0.4 lc 3 notitle
set title 'mean |dL/dW| of the first conv layer (input_conv_conv_0)'
set ylabel 'mean |dL/dW|'
set logscale y
set format y '%.0e'
plot $grad index 0 using 1:($2 > 0 ? $2 : NaN) with linespoints lw 2 pt 7 ps 0.5 lc 1 notitle, \
     $grad index 1 using 1:($2 > 0 ? $2 : NaN) with linespoints lw 2 pt 7 ps 0.5 lc 1 notitle, \
     $grad index 2 using 1:($2 > 0 ? $2 : NaN) with linespoints lw 2 pt 7 ps 0.5 lc 1 notitle, \
     $grad index 3 using 1:($2 > 0 ? $2 : NaN) with linespoints lw 2 pt 7 ps 0.5 lc 2 notitle, \
     $grad index 4 using 1:($2 > 0 ? $2 : NaN) with linespoints lw 2 pt 7 ps 0.5 lc 2 notitle, \
     $grad index 5 using 1:($2 > 0 ? $2 : NaN) with linespoints lw 2 pt 7 ps 0.5 lc 2 notitle, \
     $grad index 6 using 1:($2 > 0 ? $2 : NaN) with linespoints lw 2 pt 7 ps 0.5 lc 3 notitle, \
     $grad index 7 using 1:($2 > 0 ? $2 : NaN) with linespoints lw 2 pt 7 ps 0.5 lc 3 notitle, \
     $grad index 8 using 1:($2 > 0 ? $2 : NaN) with linespoints lw 2 pt 7 ps 0.5 lc 3 notitle
unset multiplot
