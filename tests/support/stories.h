// Short stories written for the tests, in the style the default model was trained on: text for
// calibration and evaluation that needs no ../shared data.
#ifndef SLIMLM_TESTS_SUPPORT_STORIES_H_
#define SLIMLM_TESTS_SUPPORT_STORIES_H_

namespace slimlm::testing {

// About 700 tokens of the default model's vocabulary.
inline constexpr const char* kCalibrationStories =
    "Once upon a time, there was a little girl named Lily. She loved to play in the park with "
    "her red ball. One day, she saw a big dog under a tree. The dog was sad because it was "
    "lost. Lily said, \"Do not be sad, dog. I will help you find your home.\" They walked "
    "together and looked for the dog's house. At last they saw a small blue house with a "
    "garden. A boy ran out and hugged the dog. \"Thank you, Lily!\" he said. Lily smiled and "
    "felt happy. She went home and told her mom about her new friends.\n"
    "Tom was a small boy who liked to build things. One morning, he found a box of blocks in "
    "his room. He made a tall tower with red, blue and green blocks. His sister Sue came in "
    "and wanted to play too. Tom said, \"You can help me make the tower bigger.\" They worked "
    "together and the tower grew and grew. Then the cat jumped on the table and the tower "
    "fell down. Tom and Sue laughed. \"Let's build it again,\" said Sue. They built a new "
    "tower that was even taller than before.\n"
    "There was a happy bird who lived in a big tree. Every day the bird sang a song for the "
    "other animals. One day it started to rain and the bird could not sing. The bird was sad. "
    "A kind frog came to the tree and said, \"Why are you sad, bird?\" The bird said, \"The "
    "rain is too loud, and no one can hear my song.\" The frog said, \"Sing with me! I like "
    "the rain.\" So the bird and the frog sang together in the rain. When the sun came out, "
    "all the animals came to listen, and the bird was happy again.\n"
    "Ben had a toy car that he loved very much. He took it everywhere he went. One day he went "
    "to the beach with his dad. He played with his car in the sand and made roads and hills. "
    "A big wave came and took the car away. Ben cried. His dad ran into the water and found "
    "the car. \"Here it is, Ben,\" said Dad. Ben hugged his dad and said thank you. From then "
    "on, Ben played with his car far away from the water.\n";

// A story not in kCalibrationStories, for measuring what pruning cost.
inline constexpr const char* kHeldOutStory =
    "Once upon a time, there was a little cat named Mimi. Mimi liked to sleep in the sun by "
    "the window. One day, she heard a noise outside. She jumped down and went to the door. "
    "It was a little bird that had hurt its wing. Mimi did not want to eat the bird. She "
    "wanted to help it. She called her friend, the old dog, and they took the bird to the "
    "girl who lived in the house. The girl put the bird in a warm box and gave it water. "
    "After a few days, the bird could fly again. It sang a happy song for Mimi and the dog, "
    "and then it flew up into the blue sky. Mimi went back to her spot by the window and "
    "fell asleep with a smile.\n";

}  // namespace slimlm::testing

#endif  // SLIMLM_TESTS_SUPPORT_STORIES_H_
