'use strict'
// The client suite on a simulated taro object (see platforms.js), against the local stack.
require('./suite.js')('taro')
