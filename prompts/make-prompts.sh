#!/bin/sh
# Regenerates the demo prompts: 8 kHz, mono, 16-bit WAVs spoken by espeak-ng and shaped by sox.
# Debian/Ubuntu: apt-get install -y espeak-ng sox
# Usage: prompts/make-prompts.sh [output-dir]   (default: the directory of this script)
set -eu

out=${1:-$(dirname "$0")}
voice=${VOICE:-en-us}
speed=${SPEED:-150}

for tool in espeak-ng sox; do
    command -v "$tool" >/dev/null 2>&1 || { echo "missing $tool (apt-get install -y espeak-ng sox)" >&2; exit 1; }
done

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# say NAME TEXT: speak TEXT into NAME.wav, trimmed, normalised to -3 dBFS, 8 kHz mono 16-bit.
# -D: no dither, so regenerating gives byte-identical files.
say() {
    espeak-ng -v "$voice" -s "$speed" -w "$tmp/$1.wav" "$2"
    sox -D "$tmp/$1.wav" -r 8000 -c 1 -b 16 -e signed-integer "$out/$1.wav" \
        silence 1 0.01 0.1% reverse silence 1 0.01 0.1% reverse \
        norm -3 pad 0.1 0.2
}

say welcome "Welcome to Boomerang demo sales."
say offer-callback "All our agents are busy. Press 1 to be called back as soon as an agent is free, keeping your place in the queue. Press 2 to be called back at the first available time. Press 3 to keep waiting."
say offer-immediate "All our agents are busy. Press 1 to be called back as soon as an agent is free, keeping your place in the queue. Press 3 to keep waiting."
say offer-scheduled "All our agents are busy. Press 2 to be called back at the first available time. Press 3 to keep waiting."
say offer-choose-time "To book a callback at a time that suits you, press 2."
say confirm-number "We will call you back at the number you are calling from. Press 1 to confirm, or 2 to enter another number."
say enter-number "Please enter your phone number followed by the hash key."
say callback-booked "Thank you. Your callback is booked. Goodbye."
say goodbye "Goodbye."
say please-hold "Please hold, an agent will be with you shortly."
say enter-access-code "Please enter your access code followed by hash."
say invalid-code "Sorry, that code is not valid."
say cannot-route "Sorry, we cannot put your call through right now. Your request is kept: please call again later."
say closed "We are closed now. Please call again during business hours."
say scheduled-offer "The nearest available time is"
say agent-connect "Thank you for calling. We are connecting you to an agent."
say callback-intro "Hello, this is your callback from Boomerang demo. Press 1 to be connected to an agent."
say accept-time "Press 1 to accept this time, or 2 to decline it."
say choose-time "Please enter the time you would like, as four digits, for example one four three zero for half past two, followed by the hash key."

for d in 0 1 2 3 4 5 6 7 8 9; do
    say "digit-$d" "$d"
done
say star "star"
say hash "hash"
say leave-message "Please leave your message after the tone. Hang up when you are done."
say survey-intro "Please answer a short survey about your call. Press a key from 1 to 5."
say survey-question-1 "How satisfied were you with the agent? 1 is poor, 5 is excellent."
say survey-question-2 "How likely are you to recommend us? 1 is unlikely, 5 is very likely."
say survey-thanks "Thank you for your answers."
say machine-message "Hello, this is a call back you asked for. We will call you again later. Goodbye."

# The Record block's beep: 400 ms at 1 kHz.
sox -D -r 8000 -c 1 -b 16 -e signed-integer -n "$out/beep.wav" synth 0.4 sine 1000 vol 0.5

# Hold music: four soft triad chords (C, Am, F, G), 2.5 s each with slow fades, 10 s in all.
i=0
for chord in "261.63 329.63 392.00" "220.00 261.63 329.63" "174.61 220.00 261.63" "196.00 246.94 293.66"; do
    set -- $chord
    sox -D -r 8000 -c 3 -n -c 1 -b 16 -e signed-integer "$tmp/chord$i.wav" \
        synth 2.5 sine "$1" sine "$2" sine "$3" remix - tremolo 4 15 fade q 0.5 2.5 0.7 vol 0.25
    i=$((i + 1))
done
sox -D "$tmp/chord0.wav" "$tmp/chord1.wav" "$tmp/chord2.wav" "$tmp/chord3.wav" "$out/hold-music.wav"

echo "prompts written to $out"
